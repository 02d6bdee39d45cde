"""Page script: st.navigation runs this file; the view lives in dashboard/views/job.py."""

from dashboard.views import job

job.render()
