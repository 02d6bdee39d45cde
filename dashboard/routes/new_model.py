"""Page script: st.navigation runs this file; the view lives in dashboard/views/new_model.py."""

from dashboard.views import new_model

new_model.render()
