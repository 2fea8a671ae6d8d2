package grpcserver

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// New returns a gRPC server whose every call is logged and protected from
// panics (a panic becomes codes.Internal and is logged with its stack).
func New(log *zap.Logger, opts ...grpc.ServerOption) *grpc.Server {
	log = log.Named("grpc")
	opts = append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unaryLogging(log), unaryRecovery(log)),
		grpc.ChainStreamInterceptor(streamLogging(log), streamRecovery(log)),
	}, opts...)
	return grpc.NewServer(opts...)
}

func unaryLogging(log *zap.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		logCall(log, info.FullMethod, start, err)
		return resp, err
	}
}

func streamLogging(log *zap.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		log.Debug("stream opened", zap.String("method", info.FullMethod))
		err := handler(srv, ss)
		if status.Code(err) == codes.Unavailable {
			// A watch stream ended because this daemon is stopping: expected.
			log.Debug("stream closed", zap.String("method", info.FullMethod), zap.Error(err))
			return err
		}
		logCall(log, info.FullMethod, start, err)
		return err
	}
}

func logCall(log *zap.Logger, method string, start time.Time, err error) {
	code := status.Code(err)
	fields := []zap.Field{zap.String("method", method), zap.Stringer("code", code), zap.Duration("duration", time.Since(start))}
	switch code {
	case codes.OK, codes.Canceled:
		log.Debug("call", fields...)
	default:
		log.Warn("call failed", append(fields, zap.Error(err))...)
	}
}

func unaryRecovery(log *zap.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer recoverTo(log, info.FullMethod, &err)
		return handler(ctx, req)
	}
}

func streamRecovery(log *zap.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer recoverTo(log, info.FullMethod, &err)
		return handler(srv, ss)
	}
}

func recoverTo(log *zap.Logger, method string, err *error) {
	if p := recover(); p != nil {
		log.Error("panic in gRPC handler", zap.String("method", method), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
		*err = status.Errorf(codes.Internal, "internal error in %s", method)
	}
}

// ToStatus maps an error of the coordination and status services to a gRPC
// status: one table for all of them, so clients can rely on the codes.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, ErrNotReady):
		return status.Error(codes.Unavailable, err.Error())
	default:
		return status.Error(codes.Internal, fmt.Sprint(err))
	}
}

// ErrNotReady is returned while a daemon cannot answer yet.
var ErrNotReady = errors.New("not ready")
