"""Training and prediction of the emotion models (paper §7.1-7.4, SPEC §8).

* :mod:`sernoise.training.data`: which utterances (clean and augmented) train and validate a
  model of a (regime, fold, repetition, task), labels, z-normalisation.
* :mod:`sernoise.training.loop`: one training with early stopping, and the grid search (the
  epoch loop, evaluation and grid search are shared with the E-DNN).
* :mod:`sernoise.training.ednn`: the same for the E-DNN, on audio.
* :mod:`sernoise.training.strategies`: named bundles of hooks into the shared epoch loop (examples
  per epoch, batch transforms such as mixup, extra loss terms such as a teacher's, the selection
  metric); ``standard`` is the plain loop.
* :mod:`sernoise.training.losses`: the torch criteria of the tasks (:mod:`sernoise.tasks`):
  cross-entropy, 1 - CCC.
* :mod:`sernoise.training.degenerate`: the check, after every training, that the selected model
  learned something its validation set can show (not one class, not a chance-level UAR).
* :mod:`sernoise.training.predict`: a trained model's predictions on the fold's test data.
* :mod:`sernoise.training.artifacts`: the run of a train rule and the files of a model folder
  besides the weights (curve, selection, hparams.yaml, versions.yaml).
"""
