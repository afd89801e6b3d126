"""Latif et al.: DenseNet-LSTM-Highway SER with mixup and speed perturbation; noisy, adversarial and cross-corpus tests (issue 15)."""
