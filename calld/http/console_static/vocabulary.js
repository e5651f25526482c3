// calld's call statuses that end a call (calld.domain.vocabulary.TERMINAL_STATUSES; a test keeps them equal).
export const TERMINAL_STATUSES = ["missed", "busy", "no_answer", "failed", "cancelled", "ended"];
// The others: the call is in progress and belongs on the live board.
export const LIVE_STATUSES = ["initiated", "ringing", "answered", "transferred", "recording", "on_hold"];
export const CONNECTED_STATUSES = ["answered", "recording", "on_hold", "transferred"];

export function isLive(status) {
  return LIVE_STATUSES.includes(status);
}
