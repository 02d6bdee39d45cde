"""Page script: st.navigation runs this file; the view lives in dashboard/views/new_model.py."""

from dashboard import warmup

warmup.view("new_model").render()
