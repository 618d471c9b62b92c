package boards_test

import (
	"net/http"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/rampartsec/rampart/internal/apptest"
	"github.com/rampartsec/rampart/internal/boards"
	"github.com/rampartsec/rampart/internal/browsertest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestBrowser_DragCard moves a card across the Kanban board in Chromium:
// the board's script sends the move to the API with the session's CSRF
// token and moves the card when the server agrees.
func TestBrowser_DragCard(t *testing.T) {
	chromium := testenv.LookPath(t, "chromium")
	w := newWorld(t)
	w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "bug", Title: "Drag me"})
	w.dev.Must(http.StatusCreated, "POST", api+"acme/workitems", boards.CreateWorkItemRequest{Type: "task", Title: "Stay"})
	c := browsertest.Start(t, chromium)
	c.Do("sign in",
		chromedp.Navigate(w.a.URL+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SetValue(chromedp.CSS("#username"), "dev"),
		chromedp.SetValue(chromedp.CSS("#password"), apptest.UserPassword),
		chromedp.Click(chromedp.CSS("#sign-in")),
		chromedp.WaitVisible(chromedp.CSS("#account-link")),
	)
	c.Do("open the board",
		chromedp.Navigate(w.a.URL+"/orgs/acme/board"),
		chromedp.WaitVisible(chromedp.CSS("#col-new #wi-1")),
	)
	if hidden := browsertest.Eval[bool](c, "the fallback forms", `getComputedStyle(document.querySelector("#wi-1 form.move")).display === "none"`); !hidden {
		t.Error("with the script running, the cards still show their move forms")
	}
	// HTML5 drag and drop, as the browser fires it.
	browsertest.Eval[bool](c, "drag AB#1 to Active", `(() => {
		const card = document.getElementById("wi-1"), col = document.getElementById("col-active");
		const dt = new DataTransfer();
		card.dispatchEvent(new DragEvent("dragstart", {bubbles: true, dataTransfer: dt}));
		col.dispatchEvent(new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: dt}));
		col.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: dt}));
		card.dispatchEvent(new DragEvent("dragend", {bubbles: true, dataTransfer: dt}));
		return true;
	})()`)
	c.Do("wait for the card to move", chromedp.WaitVisible(chromedp.CSS("#col-active #wi-1")))
	if got := c.Text("#count-active"); got != "1" {
		t.Errorf("Active column count = %q, want 1", got)
	}
	if got := c.Text("#count-new"); got != "1" {
		t.Errorf("New column count = %q, want 1", got)
	}
	var item boards.WorkItemJSON
	w.dev.Must(http.StatusOK, "GET", api+"acme/workitems/1", nil).Decode(t, &item)
	if item.State != "active" {
		t.Errorf("after the drop the server says AB#1 is %s", item.State)
	}
	// A move the server refuses (the item was deleted meanwhile) leaves
	// the card where it was and says why.
	w.mia.Must(http.StatusNoContent, "DELETE", api+"acme/workitems/2", nil)
	browsertest.Eval[bool](c, "drag AB#2 to Closed", `(() => {
		const card = document.getElementById("wi-2"), col = document.getElementById("col-closed");
		const dt = new DataTransfer();
		card.dispatchEvent(new DragEvent("dragstart", {bubbles: true, dataTransfer: dt}));
		col.dispatchEvent(new DragEvent("drop", {bubbles: true, cancelable: true, dataTransfer: dt}));
		return true;
	})()`)
	c.Do("wait for the error", chromedp.WaitVisible(chromedp.CSS("#board-error")))
	if got := c.Text("#board-error"); got != "Could not move AB#2: work item AB#2 not found in acme" {
		t.Errorf("error shown: %q", got)
	}
	if inNew := browsertest.Eval[bool](c, "where AB#2 is", `!!document.querySelector("#col-new #wi-2")`); !inNew {
		t.Error("a refused move moved the card")
	}
}
