"""Changes that make a model faster and keep its numbers: its forward as one static program
(--to_static), no dropout copies in eval mode, full attention masks on the CPU; and the --dropout
override of the classifier script."""

import contextlib
import types

import paddle
from paddlenlp.utils.log import logger


def static_forward(model, token_id, choices=None, autocast=contextlib.nullcontext):
    """The model with its forward run as one static program (paddle.jit.to_static): the same kernels and
    random draws, so the same numbers, with far less Python per operator. Inputs are [batch, length], or
    [batch, choices, length] for a multiple-choice model. Train and eval mode each get their program.

    Tried at once on a dummy input in eval mode (no random draw): a model the translator cannot handle
    runs eagerly, with a warning, rather than failing at the first training step; under autocast (the run's
    Precision.autocast), so the program tried is of the precision the run uses."""
    shape = [None, None] if choices is None else [None, choices, None]
    spec = [paddle.static.InputSpec(shape, "int64", name) for name in ("input_ids", "token_type_ids")]
    # full_graph: the whole forward translated once for any batch and length (the default, SOT, guards on
    # shapes and gains little here)
    static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
    dummy = paddle.full([1, 4] if choices is None else [1, choices, 4], token_id, "int64")
    was_training = model.training
    try:
        model.eval()
        with paddle.no_grad(), autocast():
            static(input_ids=dummy, token_type_ids=paddle.zeros_like(dummy))
    except Exception as e:  # noqa: BLE001  any translation failure: the eager path always works
        logger.warning(
            f"--to_static: {type(e).__name__} translating {type(model).__name__}; running eagerly "
            f"(pass --to_static false to skip the attempt)"
        )
        paddle.jit.enable_to_static(False)
    finally:
        if was_training:
            model.train()
    return static


def speed_up(model):
    """The changes that make a loaded model faster and keep its numbers, as setup.load_pretrained applies
    them: no dropout copies in eval mode, and on the CPU full attention masks."""
    skip_eval_dropout(model)
    if paddle.get_device() == "cpu":  # a GPU broadcasts the mask at no cost
        full_attention_masks(model)
    return model


def full_attention_masks(model):
    """Have every paddle.nn.TransformerEncoder of the model expand its attention mask once per forward
    to [batch, heads, length, length], so each layer adds it to the attention scores shape for shape.

    For the CPU: Paddle's CPU add broadcasts BERT's [batch, 1, 1, length] mask 30x slower than it adds
    equal shapes (370 against 12 us at 32x2x40x40), and does so at every layer. The values added are
    the same, so are the numbers. Returns how many encoders were changed."""
    changed = 0
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, paddle.nn.TransformerEncoder):
            # vars(): PaddleNLP's Layer.__setattr__ would rewrap a new forward; a bound method follows
            # the layer through a deepcopy
            vars(layer)["forward"] = types.MethodType(_forward_with_full_mask, layer)
            changed += 1
    return changed


def _forward_with_full_mask(encoder, src, src_mask=None, *args, **kwargs):
    if src_mask is not None and len(src_mask.shape) == 4 and 1 in src_mask.shape[1:3]:
        heads = encoder.layers[0].self_attn.num_heads
        # paddle.shape: the length is unknown (-1) in a static program's shapes
        src_mask = paddle.expand(src_mask, [src_mask.shape[0], heads, paddle.shape(src)[1], src_mask.shape[3]])
    return type(encoder).forward(encoder, src, src_mask, *args, **kwargs)


def skip_eval_dropout(model):
    """Leave dropout out of eval mode: every upscale_in_train paddle.nn.Dropout and every
    paddle.nn.MultiHeadAttention's attention dropout becomes a no-op there instead of a copy.

    In eval mode such a dropout returns its input unchanged, yet Paddle still runs the operator (a
    copy); on the CPU that was 9% of the tiny model's evaluation. Training mode is untouched, and in
    eval mode the values are the same, so are the numbers. Returns how many layers were changed."""
    changed = 0
    for layer in model.sublayers(include_self=True):
        if isinstance(layer, paddle.nn.Dropout) and layer.mode == "upscale_in_train":
            forward = _dropout_unless_eval
        elif isinstance(layer, paddle.nn.MultiHeadAttention):
            forward = _attention_without_eval_dropout
        else:
            continue
        vars(layer)["forward"] = types.MethodType(forward, layer)  # as in full_attention_masks
        changed += 1
    return changed


def _dropout_unless_eval(layer, input):
    return type(layer).forward(layer, input) if layer.training else input


def _attention_without_eval_dropout(attention, *args, **kwargs):
    # the attention probabilities' dropout is a functional call on a float, which p == 0 skips
    p = attention.dropout
    if attention.training or not p:
        return type(attention).forward(attention, *args, **kwargs)
    attention.dropout = 0.0
    try:
        return type(attention).forward(attention, *args, **kwargs)
    finally:
        attention.dropout = p


def override_dropout(model, p):
    """Set the embedding dropout and every encoder layer's residual/FFN dropouts to p; returns how many.

    Found by walking the backbone's Dropout layers, not by attribute names of one layout.
    Attention-probability dropout and the task head's dropout keep their value, as upstream.
    """
    changed = 0
    for name, layer in getattr(model, model.base_model_prefix).named_sublayers():
        if isinstance(layer, paddle.nn.Dropout) and not any(k in name for k in ("attn", "attention", "pooler")):
            layer.p = p
            changed += 1
    return changed
