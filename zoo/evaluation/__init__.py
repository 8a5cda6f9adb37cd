"""Scoring trained models: classification (confusion), text (CER, sequence accuracy),
detection (COCO AP, precision/recall/F1), and the plots of a run."""
