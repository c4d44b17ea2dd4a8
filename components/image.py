"""The app image: built from ``app/`` for the app's own version, referenced otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.values import registry_host
from project import APP_IMAGE_TYPE


@dataclass(frozen=True, kw_only=True)
class AppImageArgs:
    """Which image to deploy, and whether to build it.

    ``context`` is the build context, relative to the project root (where
    Pulumi runs the program), so the recorded path is the same on every machine.
    ``digest`` (default ``""``, none) pins a pushed image by its manifest digest:
    it is deployed as ``<repository>@<digest>`` and nothing is built.
    ``platform`` is what the build is for (``linux/amd64``); None leaves it to the
    Docker provider, which then takes its own machine's architecture and says so
    on every build.
    """

    repository: str
    tag: str
    app_version: str
    context: str
    digest: str = ""
    platform: str | None = None

    def __post_init__(self) -> None:
        if not self.tag or self.tag == "latest":
            raise ValueError(f"tag must name a version, got {self.tag!r}")
        if self.digest and registry_host(self.repository) is None:
            raise ValueError(f"a digest pins a pushed image; {self.repository!r} names no registry host")

    @property
    def reference(self) -> str:
        """``<repository>:<tag>``."""
        return f"{self.repository}:{self.tag}"

    @property
    def build(self) -> bool:
        """Only today's version is built: an older tag must never be rebuilt from today's code.

        A pinned digest is never built either: it names an image that exists, which a build could only replace.
        """
        return self.tag == self.app_version and not self.digest

    @property
    def push(self) -> bool:
        """A registry host in the repository means push; none means a local image."""
        return registry_host(self.repository) is not None


class AppImage(pulumi.ComponentResource):
    """Builds ``app/`` with pulumi-docker when the tag is the app's version; otherwise builds nothing.

    ``image_ref`` is what the cluster should run: the pushed digest
    (``repo@sha256:…``) for a pushed build, so even a rebuilt tag rolls out,
    and the pinned digest of a promotion; ``repo:tag`` for a local build or an
    existing tag (rollback).
    """

    image_ref: pulumi.Output[str]
    built: pulumi.Output[bool]

    def __init__(self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(APP_IMAGE_TYPE, name, None, opts)
        if args.build:
            # Imported for a build only: most updates deploy an existing tag, and the Docker SDK's import is
            # about 0.05-0.1 s of every program run (`make bench`).
            import pulumi_docker as docker  # noqa: PLC0415

            image = docker.Image(
                f"{name}-build",
                image_name=args.reference,
                build=docker.DockerBuildArgs(
                    context=args.context, dockerfile=f"{args.context}/Dockerfile", platform=args.platform
                ),
                skip_push=not args.push,
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.image_ref = image.repo_digest if args.push else image.image_name
        elif args.digest:
            self.image_ref = pulumi.Output.from_input(f"{args.repository}@{args.digest}")
        else:
            self.image_ref = pulumi.Output.from_input(args.reference)
        self.built = pulumi.Output.from_input(args.build)
        self.register_outputs({"image_ref": self.image_ref, "built": self.built})
