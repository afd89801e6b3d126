"""Training and prediction of the emotion models (paper §7.1-7.4, SPEC §8).

* :mod:`sernoise.training.data`: which utterances (clean and augmented) train and validate a
  model of a (regime, fold, repetition, task), labels, z-normalisation.
* :mod:`sernoise.training.loop`: one training with early stopping, and the grid search.
* :mod:`sernoise.training.predict`: a trained model's predictions on the fold's test data.
"""
