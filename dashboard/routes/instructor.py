"""Page script: st.navigation runs this file; the view lives in dashboard/views/instructor.py."""

from dashboard import warmup

warmup.view("instructor").render()
