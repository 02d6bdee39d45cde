"""Page script: st.navigation runs this file; the view lives in dashboard/views/classify.py."""

from dashboard import warmup

warmup.view("classify").render()
