"""Page script: st.navigation runs this file; the view lives in dashboard/views/datasets.py."""

from dashboard import warmup

warmup.view("datasets").render()
