"""Page script: st.navigation runs this file; the view lives in dashboard/views/probes.py."""

from dashboard import warmup

warmup.view("probes").render()
