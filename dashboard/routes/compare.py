"""Page script: st.navigation runs this file; the view lives in dashboard/views/compare.py."""

from dashboard.views import compare

compare.render()
