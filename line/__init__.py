"""Production: a line runs cells part after part, records what happened (signed telemetry),
notices when it gets worse (drift alarms) and calibrates itself.

``robocell.line.linefile`` reads a line file (``configs/lines/*.yaml``),
``robocell.line.scenario`` drifts a plant's hidden parameters between parts,
``robocell.line.runtime`` runs the cells' bundles under onnxruntime alone,
``robocell.line.telemetry`` stores hash-chained, signed rows and events (SQLite or
PostgreSQL), ``robocell.line.detectors`` raises drift alarms and ``robocell.line.calibrate``
holds the in-plant calibration routines and the versioned calibration files.
"""
