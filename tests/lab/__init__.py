"""The lab: models, training, looking inside, circuits and its own spec."""
