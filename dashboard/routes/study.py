"""Page script: st.navigation runs this file; the view lives in dashboard/views/study.py."""

from dashboard import warmup

warmup.view("study").render()
