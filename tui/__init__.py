"""cnnlab's terminal UI (Textual). It drives the engine through its CLI and never imports TensorFlow."""
