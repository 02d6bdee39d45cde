"""Page script: st.navigation runs this file; the view lives in dashboard/views/deploy.py."""

from dashboard.views import deploy

deploy.render()
