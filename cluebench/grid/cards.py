"""The GPUs of the grid as the user names them, matched to NVML's handles.

NVML and CUDA number the cards in orders that need not agree (CUDA's default is "fastest first").
Every job gets CUDA_DEVICE_ORDER=PCI_BUS_ID, so CUDA ordinal k is the k-th card by PCI bus id, as
nvidia-smi lists them; NVML's handles are sorted the same way. A CUDA_VISIBLE_DEVICES the user set
(ordinals, or UUIDs as nvidia-smi -L prints them; a unique prefix of one is enough, as for CUDA)
keeps the grid to those cards, and each job is given its cards in the user's own terms.
"""

import dataclasses
import os
import re

ORDER = {"CUDA_DEVICE_ORDER": "PCI_BUS_ID"}


class CardError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Card:
    handle: object
    ordinal: int  # CUDA's, in PCI bus order
    bus_id: str
    uuid: str
    name: str  # what a job's CUDA_VISIBLE_DEVICES holds for it


def nvml_text(value):
    """An NVML string: bytes from older pynvml releases, str from newer ones."""
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)


def _bus_order(bus_id):
    """'00000000:3B:00.0' (or the legacy '0000:3b:00.0') as numbers: domain, bus, device, function."""
    parts = re.split(r"[:.]", bus_id.strip())
    try:
        return tuple(int(p, 16) for p in parts)
    except ValueError:
        raise CardError(f"NVML gave a PCI bus id that is not one: {bus_id!r}") from None


def all_cards(nvml):
    """Every card NVML sees, in CUDA's PCI_BUS_ID order, named by ordinal."""
    found = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        bus_id = nvml_text(nvml.nvmlDeviceGetPciInfo(handle).busId)
        found.append((_bus_order(bus_id), bus_id, nvml_text(nvml.nvmlDeviceGetUUID(handle)), handle))
    found.sort(key=lambda card: card[0])
    return [Card(handle, k, bus_id, uuid, str(k)) for k, (_, bus_id, uuid, handle) in enumerate(found)]


def visible_cards(nvml, environ=os.environ):
    """The cards the grid may use: all of them, or those of the user's CUDA_VISIBLE_DEVICES, in its order."""
    cards = all_cards(nvml)
    if "CUDA_VISIBLE_DEVICES" not in environ:
        return cards
    value = environ["CUDA_VISIBLE_DEVICES"]
    entries = [e.strip() for e in value.split(",")] if value.strip() else []
    if not entries or entries == ["-1"]:
        raise CardError(f"CUDA_VISIBLE_DEVICES={value!r} hides every card; unset it or name the cards to use")
    chosen = []
    for entry in entries:
        if re.fullmatch(r"\d+", entry):
            matches = [c for c in cards if c.ordinal == int(entry)]
        elif entry.upper().startswith("MIG-"):
            raise CardError(
                f"CUDA_VISIBLE_DEVICES={value!r}: MIG instances ({entry}) are not supported; name whole cards"
            )
        else:  # a UUID, whole or a unique prefix (CUDA accepts those), with or without 'GPU-'
            wanted = entry if entry.upper().startswith("GPU-") else "GPU-" + entry
            matches = [c for c in cards if c.uuid.upper().startswith(wanted.upper())]
        if len(matches) != 1:
            known = ", ".join(f"{c.ordinal} ({c.uuid})" for c in cards) or "none"
            why = "matches several cards" if matches else "matches no card"
            raise CardError(f"CUDA_VISIBLE_DEVICES={value!r}: {entry!r} {why}; the cards are {known}")
        card = matches[0]
        if any(c.ordinal == card.ordinal for c in chosen):
            raise CardError(f"CUDA_VISIBLE_DEVICES={value!r}: {entry!r} names card {card.ordinal} twice")
        chosen.append(dataclasses.replace(card, name=card.uuid if not entry.isdigit() else str(card.ordinal)))
    return chosen
