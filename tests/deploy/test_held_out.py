"""Issue 13 item 1: Deploy's export works on a dataset made with Test % = 0 (the default): the
precision variants are measured on the validation split, and the report says so."""

from __future__ import annotations

import json

import pytest

from engine import jobs
from engine.datasets import DatasetError, DatasetOptions, create_dataset, open_dataset
from testkit.finished_jobs import finished_job
from trt import layout
from trt.tasks import export


@pytest.fixture
def no_test_home(home):
    create_dataset("no-test", "digits-sample", None, DatasetOptions(val_percent=10.0),
                   home=home)
    return home


def test_held_out_split_falls_back_to_validation(no_test_home):
    ds = open_dataset("no-test", home=no_test_home)
    assert len(ds.split("test")) == 0
    assert ds.held_out_split() == "val"


def test_held_out_split_refuses_a_dataset_without_either(home):
    create_dataset("train-only", "digits-sample", None, DatasetOptions(val_percent=0.0),
                   home=home)
    with pytest.raises(DatasetError, match="no test or validation images"):
        open_dataset("train-only", home=home).held_out_split()


def test_export_without_test_split_makes_every_variant(no_test_home):
    job_id = finished_job(no_test_home, dataset="no-test", epochs=1, evaluate=False)
    result = export({"job": job_id}, lambda f, m: None, home=no_test_home)
    assert set(result["variants"]) == {"fp32", "fp16", "int8"}
    fp32 = layout.onnx_path(jobs.job_dir(job_id, no_test_home))
    report = json.loads(layout.variants_report_path(fp32).read_text())
    assert report["split"] == "val"
    assert 0.0 <= report["variants"]["fp32"]["accuracy"] <= 1.0
