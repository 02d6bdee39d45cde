"""Page script: st.navigation runs this file; the view lives in dashboard/views/accounts.py."""

from dashboard import warmup

warmup.view("accounts").render()
