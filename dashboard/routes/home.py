"""Page script: st.navigation runs this file; the view lives in dashboard/views/home.py."""

from dashboard import warmup

warmup.view("home").render()
