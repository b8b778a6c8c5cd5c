"""What only the LLM-prompting strategies use: the prompts, the parsing of an answer into a price,
the plausibility guard and their shared pricer (``LLMPricer``)."""
