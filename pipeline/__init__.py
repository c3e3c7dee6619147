"""claimscreen: batch screening of medical-insurance claims for fund supervision."""
from pathlib import Path

__version__ = "0.1.0"

#: Repository root: sql/, detectors/, expectations/ and data/ live beside pipeline/.
ROOT = Path(__file__).resolve().parent.parent
