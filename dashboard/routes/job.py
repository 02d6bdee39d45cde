"""Page script: st.navigation runs this file; the view lives in dashboard/views/job.py."""

from dashboard import warmup

warmup.view("job").render()
