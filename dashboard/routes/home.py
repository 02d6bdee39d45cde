"""Page script: st.navigation runs this file; the view lives in dashboard/views/home.py."""

from dashboard.views import home

home.render()
