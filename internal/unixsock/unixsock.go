package unixsock

import "errors"

// ErrNotSocket is wrapped by the error for a path that exists and is not
// a socket.
var ErrNotSocket = errors.New("not a socket")
