"""`python -m engine.jobs [--on-demand] ...`: the scheduler process (what ensure_scheduler
starts; `python -m engine scheduler` is the same for hosting)."""

import sys

from engine.jobs.scheduler import main

sys.exit(main())
