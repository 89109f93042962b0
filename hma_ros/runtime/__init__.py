"""The world model at run time (WorldModel) and filmstrip scoring. Torch-free at import: the
names the CLI and nodes need before loading a model live here."""

# how imagined frames are rendered (WorldModel.render): corrections of the newest real frame
# where something is predicted to change, or the tokenizer's plain decoding
RENDER_MODES = ("residual", "tokens")
