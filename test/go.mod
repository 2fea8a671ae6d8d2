module github.com/nodenet/nodenet/test

go 1.26

replace (
	github.com/nodenet/nodenet/api => ../api
	github.com/nodenet/nodenet/internal => ../internal
)
