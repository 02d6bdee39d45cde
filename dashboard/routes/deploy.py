"""Page script: st.navigation runs this file; the view lives in dashboard/views/deploy.py."""

from dashboard import warmup

warmup.view("deploy").render()
