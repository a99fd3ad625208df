"""Item content: combining modality matrices (encoders come with the features command)."""
