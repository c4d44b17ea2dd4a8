"""k8s-demo: build the app image (for the app's own version) and deploy it to Kubernetes."""

from __future__ import annotations

import gc
from dataclasses import replace

import pulumi

from components.image import AppImage, AppImageArgs
from components.settings import load_settings
from components.webapp import CanaryArgs, WebApp, WebAppArgs, node_url
from project import APP_DIR, NAME, read_app_version

# The SDKs' modules are most of this process's objects (about 116,000 after these imports, 77,000 of them the
# kubernetes types), and they live until it ends. Frozen, the interpreter's exit no longer walks them in its last
# garbage collections: 0.25-0.35 s less on every preview and update (`make bench`). Only reference cycles among them
# stay uncollected, which nothing frees before the exit anyway.
gc.freeze()

settings = load_settings(
    pulumi.Config(NAME),
    project=pulumi.get_project(),
    stack=pulumi.get_stack(),
    app_version=read_app_version(),
)


def for_build(args: AppImageArgs) -> AppImageArgs:
    """``args`` with the platform to build for, when it builds: buildPlatform, else the platform of the engine that
    builds it (the stack's docker:host, DOCKER_HOST, the Docker context, the default socket)."""
    if not args.build:
        return args
    if settings.build_platform:
        return replace(args, platform=settings.build_platform)
    # Imported for a build only, as the Docker SDK is (components/image.py).
    from components import docker_engine  # noqa: PLC0415

    return replace(args, platform=docker_engine.engine_platform(configured=settings.docker_host))


image_args = for_build(
    AppImageArgs(
        repository=settings.image_repository,
        tag=settings.image_tag,
        digest=settings.image_digest,
        app_version=settings.app_version,
        context=APP_DIR,
    )
)
image = AppImage("app-image", image_args)

canary = None
if settings.canary_image_tag is not None:
    # A canary release in progress (make up sets canaryImageTag): the new image beside the untouched stable one.
    canary_image_args = for_build(replace(image_args, tag=settings.canary_image_tag, digest="", platform=None))
    canary = CanaryArgs(
        image=AppImage("canary-image", canary_image_args).image_ref,
        version=settings.canary_image_tag,
        replicas=settings.canary.replicas,
        change_cause=settings.canary_change_cause,
    )

app = WebApp(
    "web",
    WebAppArgs(
        namespace=settings.namespace,
        image=image.image_ref,
        local_image=not image_args.push,
        version=settings.image_tag,
        change_cause=settings.change_cause,
        rollout=settings.rollout,
        node_port=settings.node_port,
        resources=settings.resources,
        canary=canary,
    ),
)

pulumi.export("namespace", app.namespace)
pulumi.export("deploymentName", app.deployment_name)
pulumi.export("serviceName", app.service_name)
pulumi.export("image", app.image)
pulumi.export("imageBuilt", image.built)
pulumi.export("nodePort", app.node_port)
pulumi.export("url", app.node_port.apply(lambda port: node_url(settings.node_address, port)))
