"""Fine-tuning a causal LM to complete the course's prompt with the price (LoRA / QLoRA).

- ``config``: the run's parameters, with CPU (LoRA, fp32) and GPU (QLoRA) defaults;
- ``comparables``: training items' comparables, retrieved as at inference and cached;
- ``batches`` and ``trainer``: left-padded batches; the Trainer with the loss on the price only;
- ``training_log``: model-centric metrics while training (CSV + PNG);
- ``run``: one resumable training run and its record (``run.json``, read back by
  ``strategies.finetune.run_folder``).

torch, transformers and peft are imported inside functions.
"""
