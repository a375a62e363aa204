package notify

// The ids of the interactive parts of a Slack message, which package
// slackapp reads back from Slack's block_actions payloads.
const (
	SlackReasonBlock  = "airlock_reason" // the input block holding the reason field
	SlackReasonAction = "reason"         // the plain_text_input inside it
	SlackDecideBlock  = "airlock_decide" // the actions block with the buttons
	SlackApprove      = "approve"        // action_id of the Approve button; its value is the request id
	SlackDeny         = "deny"           // action_id of the Deny button; its value is the request id
)

// slackDecideBlocks are a reason field and the Approve and Deny buttons
// for request id. The reason sits in the message itself (Slack sends the
// message's input state with each click), so deciding needs no bot token
// and no modal.
func slackDecideBlocks(id string) []map[string]any {
	button := func(action, label, style string) map[string]any {
		return map[string]any{
			"type": "button", "action_id": action, "value": id, "style": style,
			"text": map[string]any{"type": "plain_text", "text": label},
		}
	}
	return []map[string]any{
		{"type": "input", "block_id": SlackReasonBlock, "optional": true,
			"label": map[string]any{"type": "plain_text", "text": "Reason (recorded with your decision)"},
			"element": map[string]any{"type": "plain_text_input", "action_id": SlackReasonAction, "max_length": 500,
				"placeholder": map[string]any{"type": "plain_text", "text": "Why approve or deny"}}},
		{"type": "actions", "block_id": SlackDecideBlock, "elements": []map[string]any{
			button(SlackApprove, "Approve", "primary"), button(SlackDeny, "Deny", "danger"),
		}},
	}
}
