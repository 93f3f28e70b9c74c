package crmbatch_test

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/crmbridge/crmbridge/crm"
	"github.com/crmbridge/crmbridge/crm/crmbatch"
	"github.com/crmbridge/crmbridge/crm/crmtest"
)

// Three events create tasks at once; the wrapper sends them in one
// request. (MaxBatch 3 sends the batch as soon as the third arrives; the
// default window would send it within a second and a half.)
func Example() {
	fake := crmtest.NewSeeded(nil)
	contact := fake.AddContact(crm.Contact{Name: "Ivan", Phones: []string{"+79161234567"}})

	c := crmbatch.New(fake, &crmbatch.Options{MaxBatch: 3})
	defer c.Close()

	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			_, err := c.CreateTask(context.Background(), crm.NewTask{
				Contact:  contact.ID,
				Text:     fmt.Sprint("answer message ", i+1),
				Deadline: time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC),
			})
			if err != nil {
				fmt.Println(err)
			}
		})
	}
	wg.Wait()
	fmt.Println(len(fake.Tasks()), "tasks,", fake.Calls(crmtest.MethodCreateTasks), "request")
	// Output: 3 tasks, 1 request
}
