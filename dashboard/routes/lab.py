"""Page script: st.navigation runs this file; the view lives in dashboard/views/lab.py."""

from dashboard import warmup

warmup.view("lab").render()
