"""Page script: st.navigation runs this file; the view lives in dashboard/views/compare.py."""

from dashboard import warmup

warmup.view("compare").render()
