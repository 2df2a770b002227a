"""Several GPUs, one clip: context parallelism for the MultiTalk transformer.

``sequence``: how one forward pass is split (each rank holds a contiguous share of the video
tokens; self-attention exchanges heads for sequence through diffusers' Ulysses or ring
attention; MultiTalk's audio attention, reference affinity and L-RoPE positions are computed on
the shares with the few collectives they need). ``ranks``: the processes, one per GPU, that run
those shares; rank 0 is the worker itself and owns all I/O, the encoders and the VAE.
"""
