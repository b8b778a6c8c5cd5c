"""Fine-tuning a causal LM to complete the course's prompt with the price (LoRA / QLoRA).

- ``base_model``: where the base model comes from (the packaged SmolLM2 GGUF, a GGUF file, a
  Hugging Face name or folder) and how it is made trainable;
- ``config``: the run's parameters, with CPU (LoRA, fp32) and GPU (QLoRA) defaults;
- ``examples``: items as token ids with the loss on the price completion only;
- ``training_log``: model-centric metrics while training (CSV + PNG);
- ``run``: one resumable training run and its record (``run.json``);
- ``price_model`` and ``decoding``: base + adapter at inference, and prices decoded from its
  next-token distributions (greedy, or the expectation over candidate prices).

torch, transformers and peft are imported inside functions: the strategy registry imports the
``finetuned`` strategy to list it, and listing must stay fast.
"""
