"""The shop's catalog: a JSON file of items with prices, business models, teasers and paid content."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netpay.messages import BusinessModel
from netpay.money import Money

__all__ = ["Catalog", "CatalogError", "Item"]


class CatalogError(ValueError):
    """The catalog file is missing, not JSON, or has a bad item."""


@dataclass(frozen=True, slots=True)
class Item:
    """One thing the shop sells: an article, a card, or a time pass."""

    item_id: str
    title: str
    price: Money
    model: BusinessModel
    teaser: str
    body: tuple[str, ...]
    section: str = ""
    author: str = ""
    published: str = ""
    art: str = ""  # optional colour theme / illustration key for the templates
    api: bool = False  # sold through the paid API only (e.g. one archive search): no page of its own

    @property
    def is_pass(self) -> bool:
        return self.model.kind == "time_pass"

    @property
    def is_bundle(self) -> bool:
        return self.model.kind == "bundle"

    @property
    def is_metered(self) -> bool:
        return self.model.kind == "metered"

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "title": self.title,
            "price": self.price.to_json(),
            "model": self.model.to_json(),
            "teaser": self.teaser,
            "url": f"{base_url}/items/{self.item_id}",
        }


@dataclass(frozen=True, slots=True)
class Catalog:
    """A shop's look and items, loaded from a catalog file."""

    name: str
    tagline: str
    kind: str  # "newspaper" or "cards": picks wording and colours in the templates
    currency: str
    items: tuple[Item, ...]

    def get(self, item_id: str) -> Item | None:
        for item in self.items:
            if item.item_id == item_id:
                return item
        return None

    @property
    def articles(self) -> tuple[Item, ...]:
        """The items with a page of their own: neither passes nor API-only items."""
        return tuple(i for i in self.items if not i.is_pass and not i.api)

    @property
    def stories(self) -> tuple[Item, ...]:
        """The articles themselves: what the archive holds (no bundle of them)."""
        return tuple(i for i in self.articles if not i.is_bundle and not i.is_metered)

    @property
    def passes(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.is_pass)

    @property
    def bundles(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.is_bundle)

    def bundles_of(self, item_id: str) -> tuple[Item, ...]:
        """The bundles that hold ``item_id``."""
        return tuple(b for b in self.bundles if item_id in b.model.items)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CatalogError(f"cannot read catalog {path}: {exc}") from None
        try:
            currency = data.get("currency", "EUR")
            items = []
            for raw in data["items"]:
                model = raw.get("model", {"kind": "one_off"})
                body = raw.get("body", [])
                items.append(
                    Item(
                        item_id=str(raw["item_id"]),
                        title=str(raw["title"]),
                        price=Money(int(raw["price"]), currency),
                        model=BusinessModel.from_json(model, "model"),
                        teaser=str(raw.get("teaser", "")),
                        body=tuple(str(p) for p in (body if isinstance(body, list) else [body])),
                        section=str(raw.get("section", "")),
                        author=str(raw.get("author", "")),
                        published=str(raw.get("published", "")),
                        art=str(raw.get("art", "")),
                        api=bool(raw.get("api", False)),
                    )
                )
            ids = [i.item_id for i in items]
            if len(set(ids)) != len(ids) or not items:
                raise CatalogError("catalog items need unique ids and at least one item")
            singles = {i.item_id for i in items if i.model.kind == "one_off"}
            for item in items:
                if item.is_metered and (item.model.session_id is not None or item.model.unit_no != 1):
                    raise CatalogError(f"metered item {item.item_id} must describe its first unit")
                if item.is_bundle and not set(item.model.items) <= singles:
                    raise CatalogError(f"bundle {item.item_id} may hold only one-off items of this catalog")
            return cls(str(data.get("name", "")), str(data.get("tagline", "")), str(data.get("kind", "newspaper")),
                       currency, tuple(items))  # fmt: skip
        except CatalogError:
            raise
        except Exception as exc:  # KeyError, TypeError, MalformedMessage: all mean a bad file
            raise CatalogError(f"bad catalog {path}: {exc!r}") from None
