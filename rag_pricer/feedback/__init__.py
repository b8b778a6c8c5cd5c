"""What happened after an estimate: the journal of estimates given and prices they sold for
(``journal``), the running accuracy per strategy (``monitor``), and feedback as a product
(``learning``)."""
