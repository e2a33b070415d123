"""A thin adapter between the windows and the wallet's services and purchase coordinator.

The windows call only this class. It forwards to :class:`wallet_app.services.WalletService` and to the browser
hand-off's purchase coordinator (``approve(prompt_id, allow_limit)``, ``decline(prompt_id)``), hooks the services'
plain callbacks to the :class:`~wallet_app.gui.bridge.Bridge`, and turns the coordinator's prompt objects into
:class:`~wallet_app.gui.views.PromptView`. Nothing here blocks on its own: the windows call it from workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from netpay.errors import NetPayError, PeerUnavailable, QuoteExpired
from netpay.money import Money
from wallet_app.gui.bridge import Bridge
from wallet_app.gui.views import PromptView, SettingsView

__all__ = ["GuiBackend", "prompt_view"]

#: Settings keys stored in the vault (shared with the services' ``auto_lock_s``).
SETTING_KEYS = {"callback_port": 8765, "auto_lock_s": 900, "start_with_system": False, "notifications": True}


def prompt_view(prompt: Any) -> PromptView:
    """The prompt's view from the coordinator's :class:`wallet_app.callback.prompts.Prompt`."""
    if isinstance(prompt, PromptView):
        return prompt
    return PromptView(
        prompt_id=str(prompt.prompt_id),
        vendor_id=str(prompt.vendor_id),
        vendor_name=str(prompt.vendor_name),
        origin=str(prompt.origin),
        title=str(prompt.item_title),
        price=prompt.price,
        balance_after=prompt.balance_after,
        expires_at=int(prompt.expires_at),
        advice=getattr(prompt, "advice", None),
        model=getattr(prompt, "model", None),
    )


class GuiBackend:
    """What the windows need from the wallet, in one place."""

    def __init__(
        self,
        service: Any,
        bridge: Bridge,
        events: Any = None,
        coordinator: Any = None,
        data_dir: Path | None = None,
    ) -> None:
        self.service = service
        self.bridge = bridge
        self.coordinator = None
        self.data_dir = data_dir
        if events is not None:
            self.attach_events(events)
        if coordinator is not None:
            self.attach_coordinator(coordinator)

    def attach_events(self, events: Any) -> None:
        """Connect the services' plain callbacks to the bridge's signals."""
        events.balance_changed.append(self.bridge.on_balance_changed)
        events.auto_payment_made.append(self.bridge.on_allowance_payment)
        events.payment_settled.append(lambda _paid: self.bridge.on_balance_changed())
        events.vault_locked.append(self.bridge.on_locked)
        events.vault_unlocked.append(self.bridge.vault_unlocked.emit)
        events.subscription_renewed.append(lambda sub: self.bridge.subscription_event.emit(sub, True))
        events.subscription_stopped.append(lambda sub: self.bridge.subscription_event.emit(sub, False))
        events.metered_changed.append(self.bridge.metered_changed.emit)

    def attach_coordinator(self, coordinator: Any) -> None:
        """Use ``coordinator`` for prompts: its ``on_prompt`` / ``on_prompt_closed`` callbacks reach the bridge."""
        self.coordinator = coordinator
        coordinator.on_prompt = lambda prompt: self.bridge.on_prompt(prompt_view(prompt))
        coordinator.on_prompt_closed = lambda prompt: self.bridge.on_prompt_closed(str(prompt.prompt_id))
        coordinator.on_unlock_requested = self.bridge.unlock_requested.emit

    # --- state ---------------------------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return str(self.service.state)

    def needs_passphrase(self) -> bool:
        return bool(self.service.needs_passphrase())

    # --- reads (fast vault queries) ------------------------------------------------------------------------------
    def broker_names(self) -> dict[str, str]:
        return {b.broker_id: b.name for b in self.service.brokers()}

    def snapshot(self) -> dict[str, Any]:
        """Everything the main window shows, read in one go (run in a worker)."""
        return {
            "balance": self.service.balance(),
            "chains": self.service.list_chains(),
            "activity": self.service.activity(limit=1000),
            "allowances": self.service.allowances(),
            "brokers": self.service.brokers(),
            "accounts": self.service.accounts(),
            "recoverable": self.service.recoverable_chains(refresh=False),
            "notifications": bool(self.service.get_setting("notifications", True)),
        }

    def settings(self) -> SettingsView:
        get = self.service.get_setting
        return SettingsView(
            callback_port=int(get("callback_port", SETTING_KEYS["callback_port"])),
            auto_lock_minutes=max(1, int(get("auto_lock_s", SETTING_KEYS["auto_lock_s"])) // 60),
            start_with_system=bool(get("start_with_system", False)),
            notifications=bool(get("notifications", True)),
        )

    def save_settings(self, settings: SettingsView) -> None:
        self.service.set_setting("callback_port", settings.callback_port)
        self.service.set_setting("auto_lock_s", settings.auto_lock_minutes * 60)
        self.service.set_setting("start_with_system", settings.start_with_system)
        self.service.set_setting("notifications", settings.notifications)

    # --- prompts -------------------------------------------------------------------------------------------------
    def pending_prompts(self) -> list[PromptView]:
        if self.coordinator is None:
            return []
        return [prompt_view(p) for p in self.coordinator.pending_prompts()]

    def end_metered(self, session_id: str) -> Any:
        """End a metered session (the tray's menu): nothing more is paid for it."""
        return self.service.end_metered(session_id, "user")

    def approve(self, prompt_id: str, allow_limit: Money | None) -> Any:
        """Pay the prompt and wait for the outcome (call from a worker). Raises the payment's error if it failed."""
        if self.coordinator is None:
            raise RuntimeError("no purchase coordinator")
        outcome = self.coordinator.approve(prompt_id, allow_limit)
        prompt = outcome.result(timeout=60) if hasattr(outcome, "result") else outcome
        status = getattr(prompt, "status", "paid")
        if status == "paid":
            return prompt
        error = self.coordinator.failure(prompt_id)
        if isinstance(error, NetPayError):
            raise error
        if status == "expired":
            raise QuoteExpired("the offer expired before it was approved")
        raise PeerUnavailable(f"the payment {status}")

    def decline(self, prompt_id: str) -> Any:
        if self.coordinator is None:
            raise RuntimeError("no purchase coordinator")
        return self.coordinator.decline(prompt_id)
