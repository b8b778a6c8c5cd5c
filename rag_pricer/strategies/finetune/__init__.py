"""A fine-tuned causal LM at inference: the course's prompt (or one with comparables) completed
with the price.

- ``base_model``: where the base model comes from (the packaged SmolLM2 GGUF, a GGUF file, a
  Hugging Face name or folder);
- ``prompt``: items as token ids in the prompt the run was trained on (the course's, or with
  comparables);
- ``run_folder``: what a run folder holds (``rag-pricer finetune`` writes it; training lives in
  ``rag_pricer.training.finetune``);
- ``price_model`` and ``decoding``: base + adapter at inference, and prices decoded from its
  next-token distributions (greedy, or the expectation over candidate prices).

torch, transformers and peft are imported inside functions: the strategy registry imports the
``finetuned`` strategy to list it, and listing must stay fast.
"""
