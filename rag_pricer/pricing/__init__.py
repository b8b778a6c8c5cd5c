"""The pricing contract every strategy fulfils: ``Pricer`` (``pricer``) returns ``Estimate`` values
(``values``); strategies register by name (``registry``), share heavy objects (``resources``) and
carry calibrated ranges (``ranges``)."""
