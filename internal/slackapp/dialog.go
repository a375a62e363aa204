package slackapp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/notify"
)

// dialogCallback names airlock's reason dialog in view_submission
// payloads.
const dialogCallback = "airlock_decide"

// dialogState travels in the dialog's private_metadata, from the click
// to the submission (Slack returns it as it was given, inside a signed
// request).
type dialogState struct {
	ID          string         `json:"id"`
	Verdict     grants.Verdict `json:"verdict"`
	ResponseURL string         `json:"response_url"`
}

// openDialog asks Slack (views.open, with the click's trigger id, valid
// for 3 s) to show the reason dialog for st.
func (h *Handler) openDialog(ctx context.Context, trigger string, st dialogState) error {
	if trigger == "" {
		return errors.New("the click has no trigger_id")
	}
	meta, _ := json.Marshal(st)
	verb, optional := "Approve", true
	if st.Verdict == grants.VerdictDeny {
		verb, optional = "Deny", false // a denial tells the requester why
	}
	plain := func(s string) map[string]any { return map[string]any{"type": "plain_text", "text": s} }
	view := map[string]any{
		"type": "modal", "callback_id": dialogCallback, "private_metadata": string(meta),
		"title": plain(verb + " request"), "submit": plain(verb), "close": plain("Cancel"),
		"blocks": []any{
			map[string]any{"type": "section", "text": map[string]any{"type": "mrkdwn", "text": "Request `" + escape(st.ID) + "`"}},
			map[string]any{"type": "input", "block_id": notify.SlackReasonBlock, "optional": optional, "label": plain("Reason"),
				"element": map[string]any{"type": "plain_text_input", "action_id": notify.SlackReasonAction, "multiline": true, "max_length": 500}},
		},
	}
	body, _ := json.Marshal(map[string]any{"trigger_id": trigger, "view": view})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.apiURL+"views.open", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+h.botToken)
	resp, err := h.client.Do(req)
	if err != nil {
		return errors.Unwrap(err) // not the URL's text
	}
	defer resp.Body.Close()
	var out struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return fmt.Errorf("views.open: status %d, unreadable body", resp.StatusCode)
	}
	if !out.OK {
		return fmt.Errorf("views.open: %.60q", out.Error)
	}
	return nil
}

// submit decides from the reason dialog; it returns why it refused, to
// be shown in the dialog.
func (h *Handler) submit(ctx context.Context, p *payload) string {
	var st dialogState
	if err := json.Unmarshal([]byte(p.View.PrivateMetadata), &st); err != nil || st.ID == "" ||
		(st.Verdict != grants.VerdictApprove && st.Verdict != grants.VerdictDeny) {
		h.log.Warn("refused a Slack dialog submission: its metadata is not airlock's", "slack_user", p.User.ID)
		return "This dialog does not name a request; click Approve or Deny again."
	}
	return h.decide(ctx, p.User.ID, st.ID, st.Verdict, p.View.State.reason(), st.ResponseURL)
}
