"""The job entry points. Imported as a package (from the wheel: Databricks wheel tasks, the
``lakehouse-*`` commands) the job modules still find their siblings ``_cli`` and ``_session`` as when
run as scripts (``python jobs/<job>.py``, ``spark-submit jobs/<job>.py``)."""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
