"""The Streamlit dashboard. Presentation only: everything it does goes through engine/ and trt/."""
