"""Class vocabularies of the supported datasets (index order matters)."""

import difflib

LLP_CLASSES = (
    "Speech", "Car", "Cheering", "Dog", "Cat", "Frying_(food)",
    "Basketball_bounce", "Fire_alarm", "Chainsaw", "Cello", "Banjo", "Singing",
    "Chicken_rooster", "Violin_fiddle", "Vacuum_cleaner", "Baby_laughter",
    "Accordion", "Lawn_mower", "Motorcycle", "Helicopter", "Acoustic_guitar",
    "Telephone_bell_ringing", "Baby_cry_infant_cry", "Blender", "Clapping",
)


def index_of(classes, name: str, where: str = "") -> int:
  """Returns the index of `name` in `classes` or raises a clear ValueError."""
  try:
    return classes.index(name)
  except ValueError:
    loc = f" in {where}" if where else ""
    near = difflib.get_close_matches(name, list(classes), n=1, cutoff=0.6)
    hint = f" (did you mean {near[0]!r}?)" if near and name else ""
    raise ValueError(
        f"unknown class name {name!r}{loc}{hint}; expected one of "
        f"{len(classes)} classes: {', '.join(classes)}") from None
