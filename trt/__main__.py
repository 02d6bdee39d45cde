import sys

from trt.cli import main

sys.exit(main())
