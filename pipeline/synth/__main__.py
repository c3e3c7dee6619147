import sys

from pipeline.synth import main

sys.exit(main())
