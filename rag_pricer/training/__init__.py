"""The training room: everything that fits, saves and logs the models the strategies load.

- ``baselines``: the traditional ML baselines fitted and saved (``rag-pricer train-baselines``);
- ``base_table`` and ``ensemble_trainer``: the bases' outputs, cached; the ensemble cross-fitted,
  fitted and calibrated (``rag-pricer train-ensemble``);
- ``finetune``: LoRA / QLoRA runs (``rag-pricer finetune``);
- ``tracking``: compare and fine-tuning runs logged to MLflow (``--track``).

Strategies never import this package: they load what it saved.
"""
